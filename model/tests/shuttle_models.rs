//! shuttle: larger configurations (3 to 6 agents, background writers, a
//! process that crashes at a random effect) under PCT schedules of depth 2
//! and 3 (`check_pct`) and uniformly random ones (`check_random`), on the
//! real kernel, the real single-flight and the correct model host. Each
//! iteration checks G1, G2, G3, G4, G5 and G8; shuttle fails a schedule in
//! which every thread waits (deadlock, reported as G8).
//!
//! A failure prints its seed and two commands: one re-runs the whole test
//! from the seed (`SHUTTLE_RANDOM_SEED`), one replays only the failing
//! schedule (`ROTOR_SHUTTLE_SCHEDULE`).
//!
//! `ROTOR_SHUTTLE_ITERATIONS` overrides the per-test iteration count (CI
//! uses the default; raise it for a longer soak).
#![cfg(all(feature = "shuttle", not(loom)))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rotor_kernel::{Failure, ReauthReason};
use rotor_model::check::FailOn;
use rotor_model::harness::{shuttle_check, Replay, Schedules};
use rotor_model::scenario::{run_checked, AgentResult, CorrectHost};
use rotor_model::scenarios;
use shuttle::rand::Rng;

/// Iterations per test (nine tests).
const ITERATIONS: usize = 50_000;

/// The largest effect number a crash is placed before: a sub-agent's
/// refresh takes at most about a dozen effects, so every crash point of the
/// resolve is drawn, and a few draws let it finish.
const CRASH_EFFECT_MAX: u32 = 14;

fn iterations() -> usize {
    std::env::var("ROTOR_SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(ITERATIONS)
}

fn check<F>(test_name: &'static str, schedules: Schedules, model: F)
where
    F: Fn() + Send + Sync + 'static,
{
    let replay = Replay {
        test_binary: "shuttle_models",
        test_name,
    };
    shuttle_check(replay, schedules, iterations(), model);
}

fn six_agents() {
    run_checked(
        &scenarios::six_agents_two_writers(),
        &Arc::new(CorrectHost),
        FailOn::Any,
    );
}

fn two_accounts() {
    run_checked(
        &scenarios::two_accounts_five_agents(),
        &Arc::new(CorrectHost),
        FailOn::Any,
    );
}

/// What the crash runs went through, so a test can show the crash model
/// reached the cases that matter (not only crashes that changed nothing).
#[derive(Default)]
struct CrashCoverage {
    crashed: AtomicUsize,
    crashed_holding_lock: AtomicUsize,
    others_in_doubt: AtomicUsize,
}

/// The crash model under `schedules`; then checks its coverage.
fn check_one_crash(test_name: &'static str, schedules: Schedules) {
    let coverage = Arc::new(CrashCoverage::default());
    let counts = coverage.clone();
    check(test_name, schedules, move || {
        // Drawn from shuttle's RNG, so the seed and the schedule replay it.
        let effect = shuttle::rand::thread_rng().gen_range(1..=CRASH_EFFECT_MAX);
        let report = run_checked(
            &scenarios::four_agents_one_crash(effect),
            &Arc::new(CorrectHost),
            FailOn::Any,
        );
        let results = &report.results;
        if results.iter().any(|r| r.crashed) {
            counts.crashed.fetch_add(1, Ordering::Relaxed);
        }
        if results.iter().any(|r| r.crashed_holding_lock) {
            counts.crashed_holding_lock.fetch_add(1, Ordering::Relaxed);
        }
        let in_doubt = |r: &AgentResult| {
            matches!(
                r.resolution,
                Err(Failure::NeedsReauth(ReauthReason::InDoubt { .. }))
            )
        };
        if results.iter().any(|r| !r.crashed && in_doubt(r)) {
            counts.others_in_doubt.fetch_add(1, Ordering::Relaxed);
        }
    });
    if std::env::var("ROTOR_SHUTTLE_SCHEDULE").is_ok() {
        return; // one replayed schedule: no coverage to speak of
    }
    let crashed = coverage.crashed.load(Ordering::Relaxed);
    let holding = coverage.crashed_holding_lock.load(Ordering::Relaxed);
    let in_doubt = coverage.others_in_doubt.load(Ordering::Relaxed);
    println!(
        "{test_name}: {crashed} runs with a crash, {holding} while holding the refresh lock \
         (released by the OS), {in_doubt} where a survivor stopped on the crashed refresh's fence"
    );
    assert!(crashed > 0, "no run crashed");
    assert!(holding > 0, "no run crashed while holding the refresh lock");
    assert!(
        in_doubt > 0,
        "no run left an in-doubt fence (G7) for the survivors"
    );
}

#[test]
fn six_agents_pct_depth_2() {
    check(
        "six_agents_pct_depth_2",
        Schedules::Pct { depth: 2 },
        six_agents,
    );
}

#[test]
fn six_agents_pct_depth_3() {
    check(
        "six_agents_pct_depth_3",
        Schedules::Pct { depth: 3 },
        six_agents,
    );
}

#[test]
fn six_agents_random() {
    check("six_agents_random", Schedules::Random, six_agents);
}

#[test]
fn one_crash_pct_depth_2() {
    check_one_crash("one_crash_pct_depth_2", Schedules::Pct { depth: 2 });
}

#[test]
fn one_crash_pct_depth_3() {
    check_one_crash("one_crash_pct_depth_3", Schedules::Pct { depth: 3 });
}

#[test]
fn one_crash_random() {
    check_one_crash("one_crash_random", Schedules::Random);
}

#[test]
fn two_accounts_pct_depth_2() {
    check(
        "two_accounts_pct_depth_2",
        Schedules::Pct { depth: 2 },
        two_accounts,
    );
}

#[test]
fn two_accounts_pct_depth_3() {
    check(
        "two_accounts_pct_depth_3",
        Schedules::Pct { depth: 3 },
        two_accounts,
    );
}

#[test]
fn two_accounts_random() {
    check("two_accounts_random", Schedules::Random, two_accounts);
}
