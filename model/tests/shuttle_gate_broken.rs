//! Every row of the identity gate's table (SPEC §5), broken alone, is
//! caught by a shuttle model: a gate that allows a copy the table refuses
//! fails with G3 (the checker's own statement of the table judges every
//! write), a gate that refuses a copy the table allows fails with G2 (the
//! agents do not converge). The broken gates are test-only hosts
//! (`broken::gate`); the shipped kernel has no switch for its gate.
//!
//! Each failure prints its seed and the commands that replay it.
#![cfg(all(feature = "shuttle", not(loom)))]

mod broken;

use std::sync::Arc;

use broken::gate::{BrokenGate, GateHost};
use rotor_model::check::{FailOn, Guarantee};
use rotor_model::harness::{shuttle_check, Replay, Schedules};
use rotor_model::identity_scenarios as scenarios;
use rotor_model::scenario::{run_checked, Scenario};

/// PCT schedules to search; the search stops at the first failing one.
const ITERATIONS: usize = 20_000;

/// Searches `scenario` under `gate` for a run that breaks `guarantee`.
fn expect_violation(
    test_name: &'static str,
    scenario: fn() -> Scenario,
    gate: BrokenGate,
    guarantee: Guarantee,
) {
    let host = Arc::new(GateHost { gate });
    let replay = Replay {
        test_binary: "shuttle_gate_broken",
        test_name,
    };
    shuttle_check(replay, Schedules::Pct { depth: 3 }, ITERATIONS, move || {
        run_checked(&scenario(), &host, FailOn::Only(guarantee));
    });
}

/// The control: the kernel's own gate through the same overruling host
/// breaks nothing in any configuration (so what the tests below find is
/// the broken rule, not the host).
#[test]
fn shipped_gate_through_the_gate_host_passes_every_configuration() {
    let replay = Replay {
        test_binary: "shuttle_gate_broken",
        test_name: "shipped_gate_through_the_gate_host_passes_every_configuration",
    };
    let host = Arc::new(GateHost {
        gate: BrokenGate::Shipped,
    });
    shuttle_check(replay, Schedules::Pct { depth: 3 }, 300, move || {
        for scenario in scenarios::all() {
            run_checked(&scenario, &host, FailOn::Any);
        }
    });
}

/// Row "tenant T, acct X -> tenant U, acct X" (rule 1): sub-agent t adopts
/// main's credential of another tenant.
#[test]
#[should_panic(expected = "G3 violated")]
fn rule_1_tenant_ignored() {
    expect_violation(
        "rule_1_tenant_ignored",
        scenarios::tenant_and_account_refusals,
        BrokenGate::TenantIgnored,
        Guarantee::G3,
    );
}

/// Row "acct X, e -> acct Y, e" (rule 2, B14): sub-agent e adopts main's
/// credential of another account with the same email.
#[test]
#[should_panic(expected = "G3 violated")]
fn rule_2_account_ids_yield_to_emails() {
    expect_violation(
        "rule_2_account_ids_yield_to_emails",
        scenarios::tenant_and_account_refusals,
        BrokenGate::AccountIdsYieldToEmails,
        Guarantee::G3,
    );
}

/// Row "Acct-1 -> acct-1" (rule 2, exact comparison): sub-agent c adopts.
#[test]
#[should_panic(expected = "G3 violated")]
fn rule_2_account_ids_case_insensitive() {
    expect_violation(
        "rule_2_account_ids_case_insensitive",
        scenarios::tenant_and_account_refusals,
        BrokenGate::AccountIdsCaseInsensitive,
        Guarantee::G3,
    );
}

/// Row "  acct-1  -> acct-1" (rule 2 after trim): refused, so sub-agent w
/// misses the rotation it should share.
#[test]
#[should_panic(expected = "G2 violated")]
fn rule_2_account_ids_untrimmed() {
    expect_violation(
        "rule_2_account_ids_untrimmed",
        scenarios::same_identity_copies,
        BrokenGate::AccountIdsUntrimmed,
        Guarantee::G2,
    );
}

/// Row "acct X, e1 -> acct X, e2" (rule 2: emails then ignored): refused,
/// so sub-agent k misses the rotation.
#[test]
#[should_panic(expected = "G2 violated")]
fn rule_2_emails_compared_beside_equal_account_ids() {
    expect_violation(
        "rule_2_emails_compared_beside_equal_account_ids",
        scenarios::same_identity_copies,
        BrokenGate::EmailsComparedBesideAccounts,
        Guarantee::G2,
    );
}

/// Row "acct X, e -> e" (rule 3; the seed allowed it): sub-agent d's
/// account id is dropped for main's credential of another family.
#[test]
#[should_panic(expected = "G3 violated")]
fn rule_3_account_drop_allowed() {
    expect_violation(
        "rule_3_account_drop_allowed",
        scenarios::dropped_identity_refusals,
        BrokenGate::AccountDropAllowed,
        Guarantee::G3,
    );
}

/// Row "e1 -> e2" (rule 4): sub-agent n adopts another email's credential.
#[test]
#[should_panic(expected = "G3 violated")]
fn rule_4_emails_ignored() {
    expect_violation(
        "rule_4_emails_ignored",
        scenarios::dropped_identity_refusals,
        BrokenGate::EmailsIgnored,
        Guarantee::G3,
    );
}

/// Row "e -> \" E \"" (rule 4 after lowercase and trim): refused, so
/// sub-agent s misses the rotation of its own identity.
#[test]
#[should_panic(expected = "G2 violated")]
fn rule_4_emails_case_sensitive() {
    expect_violation(
        "rule_4_emails_case_sensitive",
        scenarios::email_case_copies,
        BrokenGate::EmailsCaseSensitive,
        Guarantee::G2,
    );
}

/// Row "e -> {}" (rule 5): sub-agent f's email is dropped for main's
/// credential of another family.
#[test]
#[should_panic(expected = "G3 violated")]
fn rule_5_email_drop_allowed() {
    expect_violation(
        "rule_5_email_drop_allowed",
        scenarios::email_drop_refusal,
        BrokenGate::EmailDropAllowed,
        Guarantee::G3,
    );
}

/// Row "{} -> acct X" (rule 6, an upgrade; B16 refused it): sub-agent u's
/// store without identity never takes the shared rotation.
#[test]
#[should_panic(expected = "G2 violated")]
fn rule_6_symmetric_gate() {
    expect_violation(
        "rule_6_symmetric_gate",
        scenarios::same_identity_copies,
        BrokenGate::Symmetric,
        Guarantee::G2,
    );
}

/// The gate's precondition (SPEC §3 steps 2 and 8): identical identity
/// fields under another provider are still not the same credential.
#[test]
#[should_panic(expected = "G3 violated")]
fn provider_ignored() {
    expect_violation(
        "provider_ignored",
        scenarios::provider_mismatch,
        BrokenGate::ProviderIgnored,
        Guarantee::G3,
    );
}

/// Rule 1 dropped, where only the mirror asks the gate: the refresher's
/// rotation lands over main's credential of another tenant.
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

/// Rule 2 tightened, where only the mirror asks the gate: the reported
/// refusal is one the table does not demand.
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
