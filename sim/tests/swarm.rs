//! The shipped host over a swarm of seeds: no violation, and every protocol
//! branch and fault kind reached (a sweep that never crashes a refresher
//! mid-call proves nothing about G7). `rotor check` runs the big sweep in CI;
//! this one is sized for a debug build.

use rotor_sim::{sweep, ActorSet, Overrides, RunOptions};

#[test]
fn the_shipped_host_passes_a_swarm_and_covers_every_branch_and_fault() {
    let seeds = 4_000u64;
    let mut report = sweep(
        0..seeds,
        &Overrides::default(),
        &RunOptions::default(),
        8,
        |_| {},
    );
    // Another program's login or logout racing a refresh (the
    // compare-and-swap branches, `cas-*`) is drawn in about one seed in
    // eight; tests/foreign.rs sweeps seeds where both are present. The
    // rarest, a logout landing in main between the provider's rotation and
    // the sub-agent's mirror right after it (SPEC §3 step 8), comes about
    // once in 2,000 seeds of these (first at seed 3,545).
    let foreign = Overrides {
        actors: Some(ActorSet::parse_list("usage,foreign-login,foreign-logout").unwrap()),
        ..Overrides::default()
    };
    let racing = sweep(0..6_000, &foreign, &RunOptions::default(), 8, |_| {});
    report.failures.extend(racing.failures);
    report.coverage.merge(&racing.coverage);
    for failure in &report.failures {
        eprintln!(
            "seed {:#x}: {}\nreplay: {}",
            failure.config.seed,
            failure.first().map(|v| v.to_string()).unwrap_or_default(),
            failure.config.replay_command()
        );
    }
    assert!(
        report.failures.is_empty(),
        "{} failing seeds",
        report.failures.len()
    );
    assert_eq!(report.stats.seeds, seeds);
    assert!(report.stats.rotations > 0 && report.stats.adoptions > 0);
    let missing = report.coverage.missing();
    assert!(
        missing.is_empty(),
        "never hit in {seeds} seeds: {missing:?}"
    );
}
