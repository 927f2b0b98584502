//! Exhaustive exploration of the three CI worlds with the shipped host: every
//! reachable state satisfies G1..G8 and G11, no deadlock. Figures (distinct
//! states, transitions, depth, time) print with `--nocapture`.
//!
//! In a debug build these run the worlds without the "time passes" step (a
//! tenth of the states); `sim/ci.sh` explores the full presets, with time, in
//! release mode (`rotor check --exhaustive <world>`).

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
        "{name}: {}\nreplay: rotor check --exhaustive {name} --path {}",
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
