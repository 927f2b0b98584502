//! Exhaustive exploration of the three CI worlds with the shipped host: every
//! reachable state satisfies G1..G8 and G11, no deadlock. Figures (distinct
//! states, transitions, depth, time) print with `--nocapture`.
//!
//! In a debug build these run the worlds without the "time passes" step (a
//! tenth of the states); `sim/ci.sh` explores the full presets, with time, in
//! release mode (`rotor check --exhaustive <world>`).

mod common;

use common::UnconditionalFences;

use std::sync::Arc;

use rotor_sim::explore::{explore, replay, ExploreConfig, PRESETS};
use rotor_sim::Shipped;

fn explore_preset(name: &str) {
    let config = ExploreConfig {
        time_steps_max: 0,
        ..ExploreConfig::preset(name).expect("a known preset")
    };
    let report = explore(&config, Arc::new(Shipped));
    eprintln!("explore {name}: {report}");
    assert!(!report.truncated, "{name}: the walk was cut at states_max");
    assert!(
        report.violations.is_empty(),
        "{name}: {}\nreplay: rotor replay --exhaustive {name} --path {}",
        report.violations[0],
        report.violations[0].path_arg()
    );
    assert!(report.terminal_states > 0, "{name}: no run ever finished");
    assert!(report.distinct_states > 50, "{name}: suspiciously small");
}

#[test]
fn two_processes_one_agent_with_crash_and_endpoint_faults() {
    explore_preset("crash-faults");
}

#[test]
fn three_agents_in_two_processes_sharing_a_single_flight() {
    explore_preset("single-flight");
}

#[test]
fn main_and_two_sub_agents_with_an_identity_mismatch() {
    explore_preset("identity");
}

#[test]
fn every_preset_is_named() {
    for name in PRESETS {
        assert!(ExploreConfig::preset(name).is_some(), "{name}");
    }
    assert!(ExploreConfig::preset("nope").is_none());
}

#[test]
fn a_path_out_of_range_is_a_typed_error() {
    let config = ExploreConfig::preset("crash-faults").unwrap();
    let error = replay(&config, Arc::new(Shipped), &[0, 99]).unwrap_err();
    assert_eq!((error.depth, error.choice), (1, 99));
}

/// The lease backend's documented limit (ARCHITECTURE.md, "The lease
/// backend's limit"): a lease that expires under a live holder lets a second
/// holder present the same token; the explorer reports it as an expected
/// finding (G1), and finds no violation. The advisory backend over the same
/// world (no lease expiry exists there) finds nothing at all.
#[test]
fn the_lease_limit_is_an_expected_finding() {
    let lease = ExploreConfig {
        agents_per_process: vec![1, 1],
        time_steps_max: 0,
        lease: true,
        lease_expiries_max: 1,
        ..ExploreConfig::default()
    };
    let report = explore(&lease, Arc::new(Shipped));
    eprintln!("explore lease: {report}");
    assert!(
        report.violations.is_empty(),
        "lease: {}",
        report.violations[0]
    );
    let finding = report
        .findings
        .iter()
        .find(|f| f.found.guarantee == rotor_sim::Guarantee::G1)
        .expect("the lease limit (a G1 expected finding) is reachable");
    eprintln!("{finding}");
    let advisory = explore(
        &ExploreConfig {
            lease: false,
            ..lease
        },
        Arc::new(Shipped),
    );
    assert!(advisory.violations.is_empty() && advisory.findings.is_empty());
}

/// G11 and G4 together: a re-login in main and a usage writer, racing a main
/// agent and a sub-agent (with an endpoint fault); the shipped
/// host never writes the old family back into main and loses no update.
#[test]
fn a_relogin_sticks_in_every_reachable_state() {
    let config = ExploreConfig {
        agents_per_process: vec![2],
        time_steps_max: 0,
        relogin: true,
        writer: true,
        endpoint_faults_max: 1,
        ..ExploreConfig::default()
    };
    let report = explore(&config, Arc::new(Shipped));
    eprintln!("explore relogin: {report}");
    assert!(!report.truncated);
    assert!(
        report.violations.is_empty(),
        "relogin: {}",
        report.violations[0]
    );
    assert!(report.terminal_states > 0);
}

/// The world of the lease limit, on the fenced lease: every reachable state
/// keeps G1 and nothing is excused; with the fence condition removed the
/// explorer finds the double presentation as a violation, shortest first.
#[test]
fn the_fenced_lease_closes_the_lease_limit_and_its_condition_is_needed_g1() {
    let fenced = ExploreConfig {
        agents_per_process: vec![1, 1],
        time_steps_max: 0,
        lease: true,
        lease_expiries_max: 1,
        fenced_lease: true,
        ..ExploreConfig::default()
    };
    let report = explore(&fenced, Arc::new(Shipped));
    eprintln!("explore fenced lease: {report}");
    assert!(
        report.violations.is_empty() && report.findings.is_empty(),
        "fenced lease: {:?} {:?}",
        report.violations.first().map(|v| v.to_string()),
        report.findings.first().map(|f| f.to_string())
    );
    let broken = explore(&fenced, Arc::new(UnconditionalFences));
    let violation = broken
        .violations
        .iter()
        .find(|v| v.found.guarantee == rotor_sim::Guarantee::G1)
        .expect("without the fence condition the double presentation is reachable");
    eprintln!("{violation}");
}
