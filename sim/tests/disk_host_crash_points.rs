//! G1, G6 and G7 on the whole shipped fs host: `rotor_fs::Rotor::token_via`
//! (the driver loop, the refresh lock, fence, commit and mirror) crashed at
//! every disk call of a refresh and while its endpoint call is in flight,
//! on the simulated disk, against the simulator's strict provider; then a
//! second process asks again (see `rotor_sim::disk::host_check`).
//!
//! The shipped host must show nothing. A host whose fence (or any store
//! write) is not durable lets the second process present the spent refresh
//! token again: G1, the family revoked. Each is a broken I/O under the
//! real host code (test code only).
//!
//! Replay one point: the command a finding prints, e.g.
//! `ROTOR_DISK_SCENARIO=main-refresh ROTOR_DISK_FAULT=in-call cargo test -p rotor-sim --test disk_host_crash_points shipped_refreshes_survive_every_crash_point_g1_g6_g7 -- --exact --nocapture`.

mod broken_io;

use broken_io::{broken, shipped, Broken};
use rotor_sim::disk::check::Only;
use rotor_sim::disk::host_check::{calls_of_refresh, check_refreshes, HostFinding, HostScenario};
use rotor_sim::Guarantee;

fn report(findings: &[HostFinding]) -> String {
    findings
        .iter()
        .take(4)
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn shipped_refreshes_survive_every_crash_point_g1_g6_g7() {
    let findings = check_refreshes(
        &shipped,
        &Only::from_env(),
        "shipped_refreshes_survive_every_crash_point_g1_g6_g7",
    );
    assert!(
        findings.is_empty(),
        "{} crash points broke a guarantee on the shipped host:\n{}",
        findings.len(),
        report(&findings)
    );
}

#[test]
fn a_refresh_makes_enough_disk_calls_to_crash_between() {
    // Lock directory, lock, reads, the fence write, the commit, the mirror:
    // a sweep over fewer calls would be vacuous.
    for scenario in HostScenario::ALL {
        let calls = calls_of_refresh(scenario, &shipped);
        assert!(calls >= 20, "{scenario:?}: only {calls} disk calls");
    }
}

fn expect(which: Broken, name: &str, guarantee: Guarantee) {
    let findings = check_refreshes(&broken(which), &Only::default(), name);
    assert!(
        findings.iter().any(|f| f.guarantee == guarantee),
        "{which:?}: no {guarantee} finding; findings:\n{}",
        report(&findings)
    );
    assert!(findings
        .iter()
        .all(|f| f.to_string().contains("replay: ROTOR_DISK_SCENARIO=")));
    eprintln!(
        "{which:?}: {} findings, e.g.\n{}",
        findings.len(),
        report(&findings[..1])
    );
}

#[test]
fn a_host_that_skips_directory_fsyncs_presents_a_spent_token_g1_g7() {
    // The fence's rename is lost with the power: the next process finds no
    // fence and presents the spent token again.
    expect(
        Broken::NoDirSync,
        "a_host_that_skips_directory_fsyncs_presents_a_spent_token_g1_g7",
        Guarantee::G1,
    );
}

#[test]
fn a_host_that_skips_the_file_fsync_loses_a_returned_rotation_g6() {
    // The store's bytes never reach the disk: after power loss the store is
    // empty or torn although the refresh returned Ok.
    expect(
        Broken::NoFileSync,
        "a_host_that_skips_the_file_fsync_loses_a_returned_rotation_g6",
        Guarantee::G6,
    );
}
