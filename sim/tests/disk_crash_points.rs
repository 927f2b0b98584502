//! G6 on the shipped store code: every crash point of a store write, on the
//! simulated disk (`rotor_sim::disk`), with power loss, torn writes, EIO and
//! ENOSPC at every call.
//!
//! The shipped host must show nothing. Each broken host below is the real
//! `rotor-fs` store code over a wrapper of the I/O seam that drops one rule
//! the host keeps (test code only; the shipped code has no switch): each
//! must be reported as a G6 violation with its replay command. Together they
//! show that every fsync and the temp-file-then-rename order are needed,
//! and that the checker sees their absence.
//!
//! Replay one crash point: the command a finding prints, e.g.
//! `ROTOR_DISK_SCENARIO=replace ROTOR_DISK_FAULT=power-loss@9 cargo test -p rotor-sim --test disk_crash_points shipped_store_writes_survive_every_crash_point_g6 -- --exact --nocapture`.

use rotor_sim::disk::check::{calls_of_write, check_store_writes, Finding, Only, Scenario};
use rotor_sim::Guarantee;

mod broken_io;

use broken_io::{broken, shipped, Broken};

fn report(findings: &[Finding]) -> String {
    findings
        .iter()
        .take(5)
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn shipped_store_writes_survive_every_crash_point_g6() {
    let findings = check_store_writes(
        &shipped,
        &Only::from_env(),
        "shipped_store_writes_survive_every_crash_point_g6",
    );
    assert!(
        findings.is_empty(),
        "{} crash points broke G6 on the shipped store code:\n{}",
        findings.len(),
        report(&findings)
    );
}

#[test]
fn every_scenario_has_crash_points_worth_checking() {
    // A write that made no calls would make the sweep vacuous.
    for scenario in Scenario::ALL {
        let calls = calls_of_write(scenario, &shipped);
        assert!(calls >= 8, "{scenario:?}: only {calls} calls");
    }
}

fn expect_g6(which: Broken, name: &str, scenario: Scenario) {
    let findings = check_store_writes(&broken(which), &Only::default(), name);
    assert!(
        findings.iter().any(|f| f.scenario == scenario),
        "{which:?}: the checker did not report the broken host in {scenario:?}; findings:\n{}",
        report(&findings)
    );
    for finding in &findings {
        assert_eq!(finding.guarantee, Guarantee::G6);
        let text = finding.to_string();
        assert!(text.contains("replay: ROTOR_DISK_SCENARIO="), "{text}");
    }
    eprintln!(
        "{which:?}: {} findings, e.g.\n{}",
        findings.len(),
        report(&findings[..1])
    );
}

#[test]
fn a_host_that_skips_the_file_fsync_is_caught_g6() {
    expect_g6(
        Broken::NoFileSync,
        "a_host_that_skips_the_file_fsync_is_caught_g6",
        Scenario::Replace,
    );
}

#[test]
fn a_host_that_skips_the_directory_fsync_is_caught_g6() {
    expect_g6(
        Broken::NoDirSync,
        "a_host_that_skips_the_directory_fsync_is_caught_g6",
        Scenario::Replace,
    );
}

#[test]
fn a_host_that_does_not_fsync_new_directories_is_caught_g6() {
    expect_g6(
        Broken::NoDirSyncAfterMkdir,
        "a_host_that_does_not_fsync_new_directories_is_caught_g6",
        Scenario::FirstWrite,
    );
    expect_g6(
        Broken::NoDirSyncAfterMkdir,
        "a_host_that_does_not_fsync_new_directories_is_caught_g6",
        Scenario::SubAgentFirstWrite,
    );
}

#[test]
fn a_host_that_writes_in_place_is_caught_g6() {
    expect_g6(
        Broken::WriteInPlace,
        "a_host_that_writes_in_place_is_caught_g6",
        Scenario::Replace,
    );
}

#[test]
fn a_replayed_crash_point_runs_that_point_alone() {
    // What the replay command's variables select: one point, or the two
    // "power loss right after the write" points.
    let calls = calls_of_write(Scenario::Replace, &shipped);
    assert!(calls > 3);
    let before_rename = Only::new(Some("replace"), Some("power-loss@3"));
    let findings = check_store_writes(&broken(Broken::NoDirSync), &before_rename, "replay");
    // Call 3 of the replace write comes before the rename: a host without
    // directory fsyncs loses nothing there.
    assert!(findings.is_empty(), "{}", report(&findings));
    let after = Only::new(Some("replace"), Some("after"));
    let findings = check_store_writes(&broken(Broken::NoDirSync), &after, "replay");
    assert!(!findings.is_empty());
    assert!(findings
        .iter()
        .all(|f| f.plan.is_none() && f.scenario == Scenario::Replace));
}

#[test]
fn a_planted_symlink_is_refused_by_the_shipped_store_code_g9() {
    // The seam reports a link where a file is expected as ELOOP, and the
    // shipped store code refuses it as unsafe, never reading through it.
    use rotor_fs::{AgentId, Layout, StoreFile};
    use rotor_kernel::StoreFaultKind;
    let disk = std::sync::Arc::new(rotor_sim::disk::SimDisk::new());
    let layout = Layout::new(rotor_sim::disk::check::STATE_DIR);
    let store = StoreFile::with_io(disk.clone(), &layout, &AgentId::main(), 1_000);
    store
        .update("setup", |doc| {
            ((), {
                doc.state = Some(serde_json::json!({}));
                true
            })
        })
        .unwrap();
    disk.plant_symlink(store.path());
    let fault = store.read_doc().unwrap_err();
    assert_eq!(fault.kind, StoreFaultKind::Unsafe, "G9: {}", fault.detail);
    assert!(fault.detail.contains("symbolic link"), "{}", fault.detail);
}
