//! shuttle: the identity gate's configurations (`identity_scenarios`: 3 to
//! 5 agents and background writers, where main and the sub-agents differ
//! by tenant, account id, email case, provider, or a re-login) under PCT
//! schedules of depth 2 and 3 and uniformly random ones, on the real
//! kernel, the real single-flight and the correct model host.
//!
//! Every iteration draws one configuration (from shuttle's RNG, so the seed
//! and the schedule replay it) and checks G1, G2, G3, G4, G5 and G8; G3 with
//! every write of every store judged against the checker's own statement of
//! SPEC §5, G2 with every identity refusal judged against it too.
//!
//! `ROTOR_SHUTTLE_ITERATIONS` overrides the per-test iteration count.
#![cfg(all(feature = "shuttle", not(loom)))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rotor_model::check::FailOn;
use rotor_model::harness::{shuttle_check, Replay, Schedules};
use rotor_model::identity_scenarios as scenarios;
use rotor_model::scenario::{run_checked, CorrectHost, Scenario};
use shuttle::rand::Rng;

/// Iterations per test (three tests).
const ITERATIONS: usize = 50_000;

/// The configurations drawn from: the larger ones (the small ones are
/// loom's, in `loom_identity`).
const CONFIGURATIONS: [fn() -> Scenario; 7] = [
    scenarios::tenant_and_account_refusals,
    scenarios::dropped_identity_refusals,
    scenarios::email_drop_refusal,
    scenarios::same_identity_copies,
    scenarios::email_case_copies,
    scenarios::relogin_mid_refresh,
    scenarios::provider_mismatch,
];

fn iterations() -> usize {
    std::env::var("ROTOR_SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(ITERATIONS)
}

/// Runs the drawn configurations under `schedules`, then checks that each
/// one was drawn.
fn check(test_name: &'static str, schedules: Schedules) {
    let replay = Replay {
        test_binary: "shuttle_identity",
        test_name,
    };
    let drawn: Arc<Vec<AtomicUsize>> =
        Arc::new(CONFIGURATIONS.iter().map(|_| AtomicUsize::new(0)).collect());
    let counts = drawn.clone();
    shuttle_check(replay, schedules, iterations(), move || {
        let index = shuttle::rand::thread_rng().gen_range(0..CONFIGURATIONS.len());
        counts[index].fetch_add(1, Ordering::Relaxed);
        run_checked(
            &CONFIGURATIONS[index](),
            &Arc::new(CorrectHost),
            FailOn::Any,
        );
    });
    if std::env::var("ROTOR_SHUTTLE_SCHEDULE").is_ok() {
        return; // one replayed schedule
    }
    for (configuration, count) in CONFIGURATIONS.iter().zip(drawn.iter()) {
        let name = configuration().name;
        let count = count.load(Ordering::Relaxed);
        assert!(count > 0, "{test_name}: {name} was never drawn");
    }
}

#[test]
fn identity_pct_depth_2() {
    check("identity_pct_depth_2", Schedules::Pct { depth: 2 });
}

#[test]
fn identity_pct_depth_3() {
    check("identity_pct_depth_3", Schedules::Pct { depth: 3 });
}

#[test]
fn identity_random() {
    check("identity_random", Schedules::Random);
}
