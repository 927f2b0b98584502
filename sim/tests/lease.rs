//! The lease backend's documented limit (ARCHITECTURE.md, "The lease backend's limit"): a holder that
//! stalls past its lease loses the lock without knowing it, and a double
//! presentation follows that no client-side scheme can prevent. The simulator
//! must find it with the lease backend (an expected finding, not a failure)
//! and never with the advisory backend under the same stalls.

mod common;

use common::UnconditionalFences;

use rotor_sim::{
    run_config, ActorSet, Backend, Config, FaultKind, FaultSet, Guarantee, Overrides, RunOptions,
    StopOn,
};

fn stalling(seed: u64, backend: Backend) -> Config {
    let mut config = Config::derive(seed, &Overrides::default());
    config.backend = backend;
    config.processes = 3;
    config.agents = 1;
    config.requests = 4;
    config.faults = FaultSet::none().with(FaultKind::Pause);
    config.actors = ActorSet::none();
    config.knobs.fault_rate_per_mille = 200;
    config.knobs.faults_max = 6;
    config
}

#[test]
fn lease_backend_with_a_pause_past_the_lease_shows_the_g1_limit() {
    let options = RunOptions::default().with_stop(StopOn::Never);
    let mut found = None;
    for seed in 0..3_000 {
        let outcome = run_config(stalling(seed, Backend::Lease), &options);
        assert!(
            outcome.violations.is_empty(),
            "seed {seed}: the lease limit must be an expected finding, not {:?}",
            outcome.violations
        );
        if let Some(finding) = outcome.findings.first() {
            assert_eq!(finding.guarantee, Guarantee::G1);
            found = Some((seed, finding.clone()));
            break;
        }
    }
    let (seed, finding) = found.expect("the lease limit was not found in 3000 seeds");
    eprintln!("lease limit found at seed {seed}: {finding}");
}

#[test]
fn advisory_backend_under_the_same_pauses_keeps_g1() {
    let options = RunOptions::default().with_stop(StopOn::Never);
    for seed in 0..600 {
        let config = stalling(seed, Backend::Advisory);
        let replay = config.replay_command();
        let outcome = run_config(config, &options);
        assert!(
            outcome.violations.is_empty() && outcome.findings.is_empty(),
            "seed {seed}: {:?} {:?}\nreplay: {replay}",
            outcome.violations,
            outcome.findings
        );
    }
}

#[test]
fn fenced_lease_under_the_same_pauses_keeps_g1_without_the_limit() {
    // The same stalls that show the lease limit: on the fenced lease a holder
    // whose lease expired cannot write its fence, so it never presents, and
    // nothing is excused (no expected finding).
    let options = RunOptions::default().with_stop(StopOn::Never);
    let mut limit_seeds = 0;
    for seed in 0..3_000 {
        let lease = run_config(stalling(seed, Backend::Lease), &options);
        limit_seeds += usize::from(!lease.findings.is_empty());
        let config = stalling(seed, Backend::FencedLease);
        let replay = config.replay_command();
        let outcome = run_config(config, &options);
        assert!(
            outcome.violations.is_empty() && outcome.findings.is_empty(),
            "seed {seed}: {:?} {:?}\nreplay: {replay}",
            outcome.violations,
            outcome.findings
        );
    }
    // The sweep met the situation it is about.
    assert!(limit_seeds > 0, "no seed stalled a holder past its lease");
    eprintln!("{limit_seeds} of 3000 seeds show the lease limit; the fenced lease keeps G1 on all");
}

#[test]
fn fenced_lease_without_the_condition_presents_a_token_twice_g1() {
    let options = RunOptions {
        hooks: std::sync::Arc::new(UnconditionalFences),
        ..RunOptions::default().with_stop(StopOn::Never)
    };
    let found = (0..3_000).find_map(|seed| {
        let config = stalling(seed, Backend::FencedLease);
        let replay = config.replay_command();
        let outcome = run_config(config, &options);
        outcome
            .violated(Guarantee::G1)
            .then_some((seed, replay, outcome.violations))
    });
    let (seed, replay, violations) =
        found.expect("a host whose fences ignore the lease was never caught in 3000 seeds");
    eprintln!("seed {seed}: {violations:?}\nreplay: {replay}");
}
